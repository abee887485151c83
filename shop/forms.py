from django import forms

from shop.cart import MAX_QUANTITY


class SearchForm(forms.Form):
    q = forms.CharField(label="Search products", max_length=100, required=False)


class AddToCartForm(forms.Form):
    quantity = forms.IntegerField(label="Quantity", min_value=1, max_value=MAX_QUANTITY, initial=1)


class CartLineForm(forms.Form):
    """Change one line's quantity; 0 removes the line."""

    quantity = forms.IntegerField(label="Quantity", min_value=0, max_value=MAX_QUANTITY)
